package main

// KeysCmd groups the commands that manage keys: API keys and, here, the
// encryption keys that seal endpoint secrets and headers at rest.
type KeysCmd struct {
	RotateEncryption RotateEncryptionCmd `cmd:"" name:"rotate-encryption" help:"Re-seal every endpoint secret and header with the first --encryption-key, while Herald serves; --check counts what an older key still seals."`
}
