// Command manager runs Troupe's controllers: it places Actors on host pods
// and follows them through moves, restarts, suspension and deletion.
package main
