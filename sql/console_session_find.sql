-- The console session whose id hashes to $1, if it has not expired, with the scopes it has now:
-- a token's session follows its token (a revoked token signs the browser out at once), a proxy
-- identity's session keeps the scopes it was given.
SELECT s.identity, s.csrf, s.expires_at,
       CASE WHEN s.token_id IS NULL THEN s.scopes ELSE t.scopes END AS scopes
FROM console_session s
LEFT JOIN api_token t ON t.id = s.token_id
WHERE s.id_hash = $1
  AND s.expires_at > now()
  AND (s.token_id IS NULL OR (t.id IS NOT NULL AND t.revoked_at IS NULL))
