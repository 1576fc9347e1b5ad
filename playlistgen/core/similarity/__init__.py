"""What "sounds like" means in this library: the library-adaptive projection of the MusiCNN
embedding (fitted from the stored patch-embedding spreads, no labels) and the artists' sound."""
