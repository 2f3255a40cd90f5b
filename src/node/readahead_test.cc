#include "node/readahead.h"

#include <gtest/gtest.h>

#include <string>

namespace shoal::node {
namespace {

TEST(ReadaheadWindows, StartsAtFourAndDoublesUpToTheMostEachTimeAReaderCatchesUp) {
  ReadaheadWindows w;
  EXPECT_EQ(w.Window("az://c/o@v1", 32), 4);
  EXPECT_EQ(w.CaughtUp("az://c/o@v1", 32), 8);
  EXPECT_EQ(w.CaughtUp("az://c/o@v1", 32), 16);
  EXPECT_EQ(w.CaughtUp("az://c/o@v1", 32), 32);
  EXPECT_EQ(w.CaughtUp("az://c/o@v1", 32), 32);
  EXPECT_EQ(w.Window("az://c/o@v1", 32), 32);
  // Another object, or another version of it, starts again.
  EXPECT_EQ(w.Window("az://c/o@v2", 32), 4);
  EXPECT_EQ(w.Window("az://c/p@v1", 32), 4);
}

TEST(ReadaheadWindows, TheMostBoundsEveryWindowAndZeroMeansNone) {
  ReadaheadWindows w;
  EXPECT_EQ(w.Window("o", 2), 2);
  EXPECT_EQ(w.CaughtUp("o", 3), 3);
  EXPECT_EQ(w.Window("o", 32), 3);  // a larger bound later (a SIGHUP) lets it grow from there
  EXPECT_EQ(w.CaughtUp("o", 32), 6);
  EXPECT_EQ(w.Window("o", 0), 0);
  EXPECT_EQ(w.CaughtUp("o", 0), 0);
  EXPECT_EQ(w.Window("o", 1), 1);
}

TEST(ReadaheadWindows, TheLeastRecentlyReadObjectIsForgottenPastTheBound) {
  ReadaheadWindows w;
  w.CaughtUp("first", 32);  // 8
  for (size_t i = 1; i < ReadaheadWindows::kObjects; i++) w.Window("o" + std::to_string(i), 32);
  EXPECT_EQ(w.size(), ReadaheadWindows::kObjects);
  EXPECT_EQ(w.Window("first", 32), 8);  // read again: now the most recent
  w.Window("one more", 32);             // forgets o1, the least recent
  EXPECT_EQ(w.size(), ReadaheadWindows::kObjects);
  EXPECT_EQ(w.Window("first", 32), 8);
  w.CaughtUp("o1", 32);
  EXPECT_EQ(w.Window("o1", 32), 8);  // known again from kFirst, doubled once
}

}  // namespace
}  // namespace shoal::node
