# Bazel-shaped helpers: every target names its sources and dependencies explicitly.
#   shoal_cc_library(NAME foo SRCS a.cc b.cc DEPS bar)
#   shoal_cc_binary(NAME shoal SRCS main.cc DEPS shoal_cli)          -> build/bin/shoal
#   shoal_cc_test(NAME status_test SRCS status_test.cc DEPS shoal_common [LABELS integration]
#                 [TIMEOUT s] [COST n: ctest -j starts higher costs first] [SHARDS part=FILTER ...]
#                 [TMPFS: its scratch directories on /dev/shm])

# SHOAL_UNITY_BUILD (default ON): a library's or binary's sources compiled a few at a time as
# one translation unit, so the templates they share (nlohmann::json, Beast, the standard
# library) are parsed and generated once per batch rather than once per file: about 40% less
# compiler time for the libraries. Names in one file's anonymous namespace must not collide
# with another's. -DSHOAL_UNITY_BUILD=OFF for a build where one edit recompiles one file.
option(SHOAL_UNITY_BUILD "Compile the libraries' and binaries' sources in batches" ON)

function(shoal_unity target)
  if(SHOAL_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # g++ takes an included .cc for a header and warns that its coroutine frames use types
      # of the anonymous namespace; in one translation unit that is what they should do.
      target_compile_options(${target} PRIVATE -Wno-subobject-linkage)
    endif()
  endif()
endfunction()

function(shoal_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS})
  target_compile_options(${ARG_NAME} PRIVATE ${SHOAL_WARNINGS})
  shoal_unity(${ARG_NAME})
endfunction()

function(shoal_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  target_compile_options(${ARG_NAME} PRIVATE ${SHOAL_WARNINGS})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
  shoal_unity(${ARG_NAME})
endfunction()

function(shoal_cc_test)
  cmake_parse_arguments(ARG "TMPFS" "NAME;TIMEOUT;COST" "SRCS;DEPS;LABELS;SHARDS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  # A test's own source at -O1 (after the build type's -O2, so it wins): a quarter less
  # compiler time for its gtest and fixture code; the code under test is in the libraries,
  # built as the build type says. (-O0 made tests that compute much in their own code slower.)
  target_compile_options(${ARG_NAME} PRIVATE ${SHOAL_WARNINGS} $<$<NOT:$<CONFIG:Debug>>:-O1>)
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if(NOT ARG_COST)
    set(ARG_COST 0)
  endif()
  # SHARDS "part=FILTER" ...: one ctest test per part (NAME_part, run with --gtest_filter=FILTER),
  # so `ctest -j` runs the parts of a long binary side by side. The last part is usually the
  # negation of the others ("rest=-A*:B*"), so no test is left out.
  set(tests "")
  if(ARG_SHARDS)
    foreach(shard ${ARG_SHARDS})
      string(REGEX MATCH "^[^=]+" part "${shard}")
      string(REGEX REPLACE "^[^=]+=" "" filter "${shard}")
      add_test(NAME ${ARG_NAME}_${part} COMMAND ${ARG_NAME} --gtest_filter=${filter})
      list(APPEND tests ${ARG_NAME}_${part})
    endforeach()
  else()
    add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
    set(tests ${ARG_NAME})
  endif()
  set(env "SHOAL_SOURCE_DIR=${PROJECT_SOURCE_DIR};SHOAL_BINARY_DIR=${PROJECT_BINARY_DIR}")
  # TMPFS: the test's scratch directories (testing::TempDir: the node's data directory, the
  # local store's, the test servers') under /dev/shm, for tests whose subject is not the disk
  # and that would otherwise spend most of their time in ext4's journal (docs/testing.md).
  if(ARG_TMPFS AND IS_DIRECTORY /dev/shm)
    string(APPEND env ";SHOAL_TEST_TMPDIR=/dev/shm")
  endif()
  set_tests_properties(${tests} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}" COST ${ARG_COST}
    ENVIRONMENT "${env}")
endfunction()
