// Package archiver uploads a host's running actors' chains and states to
// the archive (package archive, docs/archive.md) as they grow: per actor,
// a Shipper seals a segment of its chain file at a durable record boundary
// once the oldest event not archived yet is almost a recovery point old,
// or once a segment's worth of bytes waits, and appends it with the state
// the segment's end records; on a lifecycle step Flush uploads the rest
// before the host reports the step done. One Archiver per host bounds the
// uploads in flight, spreads the actors' uploads in time (jitter), backs
// off while the store is down (the actors run on, their events wait on the
// node) and exports the metrics. Leftovers uploads what a host that
// crashed left on the node, under the epoch it was written in.
package archiver
