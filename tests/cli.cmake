# SPDX-License-Identifier: MIT
# Tests of the `tierpool` tool's monitoring commands, label "cli"
# (`ctest -L cli`), included by tests/CMakeLists.txt. The cases are in
# cli/cli_test.py, one ctest test each; cli/publisher.c is the process they
# watch. Skipped (77) without python3; in sanitizer builds cli_preload,
# which preloads libtierpool-malloc, skips itself.
add_executable(cli_publisher ${CMAKE_CURRENT_SOURCE_DIR}/cli/publisher.c)
target_link_libraries(cli_publisher PRIVATE tierpool)
target_compile_options(cli_publisher PRIVATE ${TP_WARNINGS})

set(TPC_SANITIZE "")
if(TP_SANITIZE)
  set(TPC_SANITIZE --sanitize=${TP_SANITIZE})
endif()
set(TPC_CASES stats_json stats_prometheus stats_same_as_library not_publishing list top preload record_plot record_ring
  exporter exporter_slow_clients exporter_fleet names untrusted_segments squatted_name children_exit
  exec_child truncated_segment contrib classes options bench help)
foreach(case ${TPC_CASES})
  tp_test(cli_${case} LABELS cli TIMEOUT 60 SKIP_RETURN_CODE 77
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/run.sh ${case}
    --tool $<TARGET_FILE:tierpool-cli> --publisher $<TARGET_FILE:cli_publisher>
    --malloc $<TARGET_FILE:tierpool-malloc> --source ${PROJECT_SOURCE_DIR}
    --work ${CMAKE_CURRENT_BINARY_DIR}/cli-${case} ${TPC_SANITIZE})
endforeach()
# The runner times every allocator's pairs: 17 s alone on a busy machine, past
# 60 s once beside the rest of the suite in CI. The case allows the tool 240 s.
set_tests_properties(cli_bench PROPERTIES TIMEOUT 300)
