package sqsadapter

import "fmt"

// validateSecurity checks the security options (validate calls it last).
func (o *Options) validateSecurity() error {
	if o.SendHandshakeSecrets && (len(o.HandshakeAuthKeys) > 0 || len(o.RedactHeaders) > 0 || len(o.RedactQuery) > 0) {
		return fmt.Errorf("%w: SendHandshakeSecrets sends the whole handshake: HandshakeAuthKeys, RedactHeaders "+
			"and RedactQuery would be ignored", ErrInvalidOptions)
	}
	return nil
}
