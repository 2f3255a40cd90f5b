#pragma once

namespace shoal::cluster {

// `shoal-sim fan-in ...`: the fan-in model (fanin_sim.cc).
int FanInMain(int argc, char** argv);

}  // namespace shoal::cluster
