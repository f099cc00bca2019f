// Package testkit holds helpers for tests that start real servers; imported
// only by _test.go files.
//
// PHPFPM starts Debian's php-fpm 8.2 with pools written by the test, and
// Daemon starts any foreground server (nginx, apache2, haproxy) with a
// config file written by the test. Both wait, bounded, until the server
// accepts connections, fail the test with the server's own output when it
// does not, and stop the server when the test ends. Nothing is skipped: a
// missing binary fails the test with the Debian package that provides it.
//
// SendWithFIN sends a request and the connection's FIN in one segment, as
// a half-closing visitor does (Linux).
package testkit
