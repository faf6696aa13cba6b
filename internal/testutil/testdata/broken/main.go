// Command broken does not compile: TestBuildActorReportsCompileErrors needs a
// package whose build fails.
package main

func main() { doesNotExist() }
