-- Creates or updates the sound at a path; returns its id.
INSERT INTO sound (path, duration_s, title, artist, type, program, album, label, isrc, composer)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (path) DO UPDATE SET
    duration_s = excluded.duration_s, title = excluded.title, artist = excluded.artist,
    type = excluded.type, program = excluded.program, album = excluded.album,
    label = excluded.label, isrc = excluded.isrc, composer = excluded.composer,
    updated_at = now()
RETURNING id
