#!/usr/bin/env bash
# Build a held-out music library: sources the dev corpus (../shared/corpus/dev_corpus.sh) does not
# contain and the shipped similarity projection was never fitted on.
#
#   bench/heldout_corpus.sh OUT_DIR
#
# Freely licensed game soundtracks from Debian's archive (14 packages, ~1.1 GB of .debs, ~250
# Ogg Vorbis / Opus / MP3 tracks). Nothing is installed: each .deb is fetched with `apt-get download`
# and only its music files are unpacked. Same layout as the dev corpus:
# OUT_DIR/<package>/<file>, OUT_DIR/LICENSES/<package>.copyright, OUT_DIR/manifest.tsv
# (path, package, bytes). A file in a sub-folder of the music folder is named
# <sub-folder>_<file>. Files under MIN_BYTES (200 KB: jingles and sound effects of a few
# seconds, a single MusiCNN patch) are left out. OUT_DIR/artists.tsv (path, artist) records the
# composer where the package credits it per file but the file has no artist tag (warzone2100's
# album.json, hedgewars' Music/credits.txt, gigalomania's copyright file); bench/similarity_artists.py
# reads it. Re-running on a finished folder is a no-op.
set -euo pipefail
out=${1:?usage: heldout_corpus.sh OUT_DIR}
mkdir -p "$out/LICENSES" "$out/.debs"
out=$(cd "$out" && pwd)
MIN_BYTES=200000

# package | path inside the package that holds the music (a folder, or a .pk3 zip) | name glob
pkgs=(
  "wesnoth-1.16-music|usr/share/games/wesnoth/1.16/data/core/music|*"
  "warzone2100-music|usr/share/games/warzone2100/music/albums|*"
  "supertux-data|usr/share/games/supertux2/music|*"
  "freedroidrpg-data|usr/share/freedroidrpg/data/sound/music|*"
  "colobot-common-sounds|usr/share/games/colobot/music|*"
  "marsshooter-data|usr/share/games/marsshooter/audio/music|*"
  "nexuiz-music|usr/share/games/nexuiz/data/music.pk3|*"
  "drascula-music|usr/share/scummvm/drascula/audio|*"
  "hedgewars-data|usr/share/games/hedgewars/Data/Music|*"
  "btanks-data|usr/share/games/btanks/data/tunes|*"
  "gigalomania-data|usr/share/gigalomania/music|*"
  "frozen-bubble-data|usr/share/games/frozen-bubble/snd|*zik*"
  "asc-music|usr/share/games/asc/music|*"
  "scorched3d-data|usr/share/games/scorched3d/data/globalmods/none/data/music|*"
)

if [ -f "$out/manifest.tsv" ]; then echo "held-out corpus already in $out"; exit 0; fi

need=()
for row in "${pkgs[@]}"; do
  name=${row%%|*}
  ls "$out/.debs/${name}"_*.deb >/dev/null 2>&1 || need+=("$name")
done
if [ ${#need[@]} -gt 0 ]; then
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' 2>/dev/null | head -1)" ] || apt-get update -qq
  (cd "$out/.debs" && apt-get download -qq "${need[@]}" 2>/dev/null)
fi

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for row in "${pkgs[@]}"; do
  name=${row%%|*}; rest=${row#*|}; inner=${rest%%|*}; glob=${rest#*|}
  deb=$(ls "$out/.debs/${name}"_*.deb | head -1)
  mkdir -p "$tmp/$name" "$out/$name"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/$name" --wildcards "./$inner*" "./usr/share/doc/$name/copyright" 2>/dev/null || true
  cp "$tmp/$name/usr/share/doc/$name/copyright" "$out/LICENSES/$name.copyright" 2>/dev/null || true
  src="$tmp/$name/$inner"
  if [ -f "$src" ]; then  # a zip archive of music
    python3 - "$src" "$out/$name" "$MIN_BYTES" <<'PY'
import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for info in z.infolist():
    if info.filename.lower().endswith((".ogg", ".opus")) and info.file_size >= int(sys.argv[3]):
        with z.open(info) as r, open(os.path.join(sys.argv[2], os.path.basename(info.filename)), "wb") as w:
            w.write(r.read())
PY
  else
    (cd "$src" && find . -type f -iname "$glob" \( -iname '*.ogg' -o -iname '*.opus' -o -iname '*.mp3' \) -size +$((MIN_BYTES / 1000))k -printf '%P\n') |
      while IFS= read -r rel; do cp "$src/$rel" "$out/$name/${rel//\//_}"; done
  fi
done

# composers the packages credit outside the files' tags (see the header)
python3 - "$tmp" "$out" <<'PY' > "$out/artists.tsv"
import glob, json, os, re, sys
tmp, out = sys.argv[1], sys.argv[2]
rows = []
for album in sorted(glob.glob(f"{tmp}/warzone2100-music/usr/share/games/warzone2100/music/albums/*/album.json")):
    sub = os.path.basename(os.path.dirname(album))
    for t in json.load(open(album))["tracks"]:
        rows.append((f"warzone2100-music/{sub}_{t['filename']}", t["author"]))
credits = f"{tmp}/hedgewars-data/usr/share/games/hedgewars/Data/Music/credits.txt"
for line in open(credits, encoding="utf-8") if os.path.exists(credits) else []:
    if "=" in line:
        name, who = line.strip().split("=", 1)
        rows.append((f"hedgewars-data/{name}", re.split(r" <| - \"", who)[0].strip()))
rows += [(f"gigalomania-data/{os.path.basename(p)}", "Sindre Frøyn")   # copyright: "Sindre Froyn - Music"
         for p in glob.glob(f"{tmp}/gigalomania-data/usr/share/gigalomania/music/*.ogg")]
present = {p.casefold(): p for p in (os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)}
print("path\tartist")
for path, artist in rows:
    if path.casefold() in present:
        print(f"{present[path.casefold()]}\t{artist}")
PY

(cd "$out" && find . -path ./.debs -prune -o -type f \( -iname '*.ogg' -o -iname '*.opus' -o -iname '*.mp3' \) -printf '%P\t%s\n' | sort |
  awk -F'\t' 'BEGIN{print "path\tpackage\tbytes"} {split($1,a,"/"); print $1"\t"a[1]"\t"$2}') > "$out/manifest.tsv"
echo "held-out corpus: $(($(wc -l < "$out/manifest.tsv") - 1)) tracks in $out, $(($(wc -l < "$out/artists.tsv") - 1)) composers from the packages' credits"
