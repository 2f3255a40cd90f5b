# Bazel-shaped helpers: every target names its sources and dependencies explicitly.
#   shoal_cc_library(NAME foo SRCS a.cc b.cc DEPS bar)
#   shoal_cc_binary(NAME shoal SRCS main.cc DEPS shoal_cli)          -> build/bin/shoal
#   shoal_cc_test(NAME status_test SRCS status_test.cc DEPS shoal_common [LABELS integration]
#                 [TIMEOUT s] [COST n: ctest -j starts higher costs first] [SHARDS part=FILTER ...])

function(shoal_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS})
  target_compile_options(${ARG_NAME} PRIVATE ${SHOAL_WARNINGS})
endfunction()

function(shoal_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  target_compile_options(${ARG_NAME} PRIVATE ${SHOAL_WARNINGS})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

function(shoal_cc_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT;COST" "SRCS;DEPS;LABELS;SHARDS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  target_compile_options(${ARG_NAME} PRIVATE ${SHOAL_WARNINGS})
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
  set_tests_properties(${tests} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}" COST ${ARG_COST}
    ENVIRONMENT "SHOAL_SOURCE_DIR=${PROJECT_SOURCE_DIR};SHOAL_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()
