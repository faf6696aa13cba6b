// Package msgroute routes a message to the host that runs its target:
// Actor -> (status.hostPod, status.epoch) -> the host's Lease ->
// its peer endpoint, all read from informers (no API request per message),
// and delivers it there with msgwire.Client. A target that is moving is
// waited for, bounded; a message is sent again only when it cannot have
// been enqueued (NotHere, or nothing written). The hosts use it for their
// actors' messages, the gateway for external callers'.
package msgroute
