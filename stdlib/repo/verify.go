package repo

import "fmt"

// Verify says how much of an upload Publish reads before it accepts it.
type Verify string

const (
	// VerifyBasic, the default, checks what keeps the repository and apt right: the ar
	// structure, debian-binary, control.tar and its control file (name, version,
	// architecture, the file name they give), that data.tar starts as its compression says,
	// and the size and hashes of the upload, which the index lists and apt checks every
	// download against. data.tar is not decompressed.
	VerifyBasic Verify = "basic"
	// VerifyFull also decompresses data.tar to its end: no path may escape the package
	// root, and every file must match md5sums.
	VerifyFull Verify = "full"
)

// ParseVerify reads a Verify level ("" is VerifyBasic).
func ParseVerify(s string) (Verify, error) {
	switch Verify(s) {
	case "", VerifyBasic:
		return VerifyBasic, nil
	case VerifyFull:
		return VerifyFull, nil
	}
	return "", fmt.Errorf("verify %q: want basic or full", s)
}

// verifyFull reports whether this publish reads every upload's data.tar: as
// PublishOptions.Verify says, else as repo.conf's Verify says.
func (p *publisher) verifyFull() bool {
	if p.opt.Verify != "" {
		return p.opt.Verify == VerifyFull
	}
	return p.cfg.Verify == VerifyFull
}
