-- 0010_sealed_headers: an endpoint's custom headers (often credentials for
-- the customer's receiver) are sealed by the keyring like its signing
-- secrets, bound to the endpoint ID (herald.SealHeaders); NULL when it has
-- none. SQL cannot encrypt: in the same transaction as this statement,
-- Herald seals every row's plaintext headers into the new column and sets
-- headers to NULL with secure_delete on (sealPlaintextHeaders in
-- migrate.go), so the migration is applied whole or not at all. The old
-- column stays, always NULL, for a rolling upgrade's older nodes.
ALTER TABLE endpoint ADD COLUMN sealed_headers BLOB;
