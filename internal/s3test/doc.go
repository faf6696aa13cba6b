// Package s3test runs a real S3 server for tests: versitygw (built and
// cached by hack/s3-server.sh) with its posix backend, on a loopback port
// and a temporary directory, started by Start and stopped when the test
// ends. Tests of the archive run against it rather than a mock, so what they
// prove holds for a store that speaks S3.
package s3test
