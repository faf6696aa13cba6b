// Package msgwire is Troupe's message protocol v1 over HTTP: the error
// bodies and the status <-> reason <-> actorhost error table shared by
// `troupe run`'s local socket, the hosts' peer endpoint and the gateway,
// the host-to-host paths and headers (Troupe-Epoch, Troupe-From,
// Troupe-Path, ...), and a Client that delivers to a peer host over
// HTTP/2 with mutual TLS.
//
// Why HTTP/2 rather than gRPC: the local socket already speaks this
// protocol (POST a message, get the response bytes or a JSON error), so
// one handler and one error table serve all three transports; a message is
// opaque bytes, so protobuf would add code generation and a second schema
// for nothing; and Go's net/http multiplexes concurrent requests as
// streams on one pooled TLS connection per peer, which is what gRPC would
// give too.
package msgwire
