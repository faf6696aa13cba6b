// Package controllers holds the manager's reconcilers: the Actor reconciler
// validates each Actor, gives it an id, places it on a live host pod, moves
// it when the host dies, restarts it per its restartPolicy and lets it go
// once its host has flushed its chain.
package controllers
