#pragma once

namespace shoal::node {

// shoald's command line: parses flags (and --config FILE), runs the node until SIGTERM or
// SIGINT. Returns the process exit code.
int RunDaemon(int argc, char** argv);

}  // namespace shoal::node
