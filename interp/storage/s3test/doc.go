// Package s3test starts a real S3 server for tests: SeaweedFS, with its S3 gateway on a
// free port of 127.0.0.1, one per test process (Shared; TestMain calls StopShared), tests
// using prefixes of their own. Tests of S3 storage run against it, not against a mock.
//
//	srv := s3test.Shared(t)     // bucket s3test.Bucket exists, readable anonymously
//	srv.Setenv(t)               // AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, ... point at it
//	apt reads srv.URL("repo")   // http://127.0.0.1:PORT/upds/repo
//
// # The binary
//
// SeaweedFS is built from its module source (Module at Version): `go install` refuses it
// because its go.mod has replace directives, so Binary runs `go mod download` and then
// `go build ./weed` in a writable copy of the module, once per machine, into
// $UPDS_S3TEST_CACHE or /var/cache/upds-s3test (weed-VERSION). Concurrent test processes
// build it once (an exclusive flock); later starts take about a second. A cold build
// downloads about 3 GB of modules through the Go module proxy and compiles them (3 min 17 s
// on a fresh two-core machine), which is why .ci/install-deps builds it before the tests
// (.ci/build-s3test). $UPDS_S3TEST_WEED names a weed binary to use instead.
package s3test
