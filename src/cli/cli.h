#pragma once

namespace shoal::cli {

// Runs the `shoal` command line; returns the process exit code (0 ok, 1 failed, 2 usage).
int Run(int argc, char** argv);

}  // namespace shoal::cli
