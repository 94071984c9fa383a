package sqsadapter

import "fmt"

// validateSecurity checks the security options (validate calls it last).
func (o *Options) validateSecurity() error {
	if o.SendHandshakeSecrets && (len(o.HandshakeAuthKeys) > 0 || len(o.RedactHeaders) > 0 || len(o.RedactQuery) > 0) {
		return fmt.Errorf("%w: SendHandshakeSecrets sends the whole handshake: HandshakeAuthKeys, RedactHeaders "+
			"and RedactQuery would be ignored", ErrInvalidOptions)
	}
	for i, k := range o.SigningKeys {
		if len(k) < minSigningKeyLen {
			return fmt.Errorf("%w: SigningKeys[%d] is %d bytes, want at least %d (32 random bytes recommended)",
				ErrInvalidOptions, i, len(k), minSigningKeyLen)
		}
	}
	if o.SignatureMaxAge < 0 {
		return fmt.Errorf("%w: SignatureMaxAge is negative (%v)", ErrInvalidOptions, o.SignatureMaxAge)
	}
	if o.AcceptUnsigned && len(o.SigningKeys) == 0 {
		return fmt.Errorf("%w: AcceptUnsigned without SigningKeys: without keys every message is accepted anyway; "+
			"set the keys too", ErrInvalidOptions)
	}
	if o.TopicPolicy != nil {
		return o.TopicPolicy.validate()
	}
	return nil
}
