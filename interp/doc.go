// Package interp is the Starlark host of upds: it evaluates BUILD.star hermetically on the
// project filesystem, resolves load() labels, holds the task and target graph, and runs it in
// parallel with an action cache. It knows nothing about Debian: the builtins that build things
// come from the stdlib packages through Options.Builtins.
package interp
