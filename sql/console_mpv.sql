-- The mpv instances captured: when each was last heard from and how many plays it gave.
SELECT e.instance, max(e.time) AS last_event,
       (SELECT count(*) FROM mpv_play p WHERE p.instance = e.instance) AS plays
FROM mpv_event e
GROUP BY e.instance
ORDER BY e.instance
