# Out of memory (issue 9), included by tests/CMakeLists.txt after
# override.cmake. test_oom runs each case in a child under RLIMIT_AS.
tp_add_test(test_oom LIB tierpool LABELS api oom TIMEOUT 60)
