package repo

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// signConfig is the OpenPGP configuration for keys and signatures: v4 keys and
// SHA-512, which apt's gpgv (and sqv) accept.
func signConfig(now time.Time) *packet.Config {
	return &packet.Config{
		DefaultHash: crypto.SHA512,
		Algorithm:   packet.PubKeyAlgoEdDSA,
		Time:        func() time.Time { return now },
	}
}

// newSigningKey creates an ed25519 OpenPGP key and returns it armored: the private
// key (with the public parts) and the public key alone.
func newSigningKey(name, email string) (priv, pub []byte, err error) {
	cfg := signConfig(time.Now())
	e, err := openpgp.NewEntity(name, "apt repository signing key", email, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("generate signing key: %w", err)
	}
	var pb bytes.Buffer
	w, err := armor.Encode(&pb, openpgp.PrivateKeyType, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := e.SerializePrivate(w, cfg); err != nil {
		return nil, nil, fmt.Errorf("serialize signing key: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, nil, err
	}
	pub, err = armoredPublic(e)
	if err != nil {
		return nil, nil, err
	}
	return append(pb.Bytes(), '\n'), pub, nil
}

func armoredPublic(e *openpgp.Entity) ([]byte, error) {
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := e.Serialize(w); err != nil {
		return nil, fmt.Errorf("serialize public key: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// signer is a loaded private key able to sign.
type signer struct {
	entity *openpgp.Entity
	key    *packet.PrivateKey
}

// loadSigner parses an armored private key and checks that it can sign and is
// strong enough: ed25519 (EdDSA) or RSA of at least 3072 bits, not passphrase-protected.
func loadSigner(armored []byte) (*signer, error) {
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	now := time.Now()
	for _, e := range el {
		if e.PrivateKey == nil {
			continue
		}
		k, ok := e.SigningKey(now)
		if !ok || k.PrivateKey == nil {
			continue
		}
		if k.PrivateKey.Encrypted {
			return nil, errors.New("signing key is passphrase-protected; export it without a passphrase (gpg --export-secret-keys after removing the passphrase) or let upds generate one")
		}
		switch k.PublicKey.PubKeyAlgo {
		case packet.PubKeyAlgoEdDSA, packet.PubKeyAlgoEd25519:
		case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly:
			bits, err := k.PublicKey.BitLength()
			if err != nil {
				return nil, fmt.Errorf("signing key: %w", err)
			}
			if bits < 3072 {
				return nil, fmt.Errorf("signing key: RSA %d bits is too weak (need at least 3072, or ed25519)", bits)
			}
		default:
			return nil, fmt.Errorf("signing key: algorithm %v is not supported (use ed25519 or RSA >= 3072)", k.PublicKey.PubKeyAlgo)
		}
		return &signer{entity: e, key: k.PrivateKey}, nil
	}
	return nil, errors.New("signing key: no usable private signing key found")
}

// clearsign returns the InRelease form of text. The signature block is re-armored
// with a CRC24 line: gpgv 2.2 (apt's verifier on Debian 12) rejects armor without it.
func (s *signer) clearsign(text []byte, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	w, err := clearsign.Encode(&b, s.key, signConfig(now))
	if err != nil {
		return nil, fmt.Errorf("clearsign: %w", err)
	}
	// The newline before the signature armor is not part of the signed text.
	if _, err := w.Write(bytes.TrimSuffix(text, []byte("\n"))); err != nil {
		return nil, fmt.Errorf("clearsign: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("clearsign: %w", err)
	}
	out := b.Bytes()
	block, _ := clearsign.Decode(out)
	i := bytes.Index(out, []byte("\n-----BEGIN PGP SIGNATURE-----"))
	if block == nil || i < 0 {
		return nil, errors.New("clearsign: unexpected output")
	}
	sig, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, fmt.Errorf("clearsign: %w", err)
	}
	res := bytes.NewBuffer(append([]byte(nil), out[:i+1]...))
	aw, err := armor.Encode(res, "PGP SIGNATURE", nil)
	if err != nil {
		return nil, err
	}
	aw.Write(sig)
	if err := aw.Close(); err != nil {
		return nil, err
	}
	res.WriteByte('\n')
	return res.Bytes(), nil
}

// detach returns an armored detached signature of text (Release.gpg).
func (s *signer) detach(text []byte, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	cfg := signConfig(now)
	cfg.SigningKeyId = s.key.KeyId
	if err := openpgp.ArmoredDetachSign(&b, s.entity, bytes.NewReader(text), cfg); err != nil {
		return nil, fmt.Errorf("sign Release: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// VerifyInRelease checks the clearsigned InRelease data against the armored public
// key(s) and returns the signed Release text. Text outside the signed block is ignored
// and never returned. A signature that does not verify is an ErrVerify.
func VerifyInRelease(data []byte, armoredKey []byte) (releaseText []byte, err error) {
	keyring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armoredKey))
	if err != nil {
		return nil, withKind(ErrVerify, fmt.Errorf("verify InRelease: read key: %w", err))
	}
	block, _ := clearsign.Decode(data)
	if block == nil {
		return nil, withKind(ErrVerify, errors.New("verify InRelease: not a clearsigned message"))
	}
	if _, err := block.VerifySignature(keyring, nil); err != nil {
		return nil, withKind(ErrVerify, fmt.Errorf("verify InRelease: %w", err))
	}
	text := block.Plaintext
	if len(text) > 0 && text[len(text)-1] != '\n' {
		text = append(text, '\n')
	}
	return text, nil
}

// VerifyDetached checks an armored detached signature (Release.gpg) of data; one that
// does not verify is an ErrVerify.
func VerifyDetached(data, signature, armoredKey []byte) error {
	keyring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armoredKey))
	if err != nil {
		return withKind(ErrVerify, fmt.Errorf("verify signature: read key: %w", err))
	}
	if _, err := openpgp.CheckArmoredDetachedSignature(keyring, bytes.NewReader(data), bytes.NewReader(signature), nil); err != nil {
		return withKind(ErrVerify, fmt.Errorf("verify signature: %w", err))
	}
	return nil
}
