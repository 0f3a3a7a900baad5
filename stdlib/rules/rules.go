// Package rules holds the Starlark rule library embedded in upds and loaded as @upds//,
// e.g. load("@upds//python.star", "python_app").
package rules

import "embed"

// FS is the rule library: the .star files of this directory.
//
//go:embed *.star
var FS embed.FS
