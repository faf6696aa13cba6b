// Command host is Troupe's node-local actor host: one pod per node (a
// DaemonSet) runs it with NODE_NAME, POD_NAME and POD_NAMESPACE from the
// downward API; it runs the Actors the controller assigns to it.
package main
