#include "node/daemon.h"

int main(int argc, char** argv) { return shoal::node::RunDaemon(argc, argv); }
