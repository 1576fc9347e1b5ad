-- MixRamp fade hints (MPD's MIXRAMP_START / MIXRAMP_END tag values, "dB seconds;..."), computed
-- from the EBU R128 meter's momentary loudness during analysis (core/playlists/mixramp.py).
-- NULL for tracks analysed before this migration: their exports simply carry no hints.
ALTER TABLE features ADD COLUMN mixramp_start TEXT;
ALTER TABLE features ADD COLUMN mixramp_end TEXT;
