# SPDX-License-Identifier: MIT
# Heap profiles (docs/profiling.md), label "profile", included by
# tests/CMakeLists.txt: profile/profile_prog.c allocates known amounts from
# three call sites, and profile/profile_test.py profiles it (from outside
# with `tierpool profile`, or at exit) and reads the result with the real
# google-pprof. Skipped (77) without google-pprof, but not in CI
# (tools/install-deps.sh installs it).
foreach(prog profile_prog profile_prog_unwinder)
  add_executable(${prog} ${CMAKE_CURRENT_SOURCE_DIR}/profile/profile_prog.c)
  target_compile_options(${prog} PRIVATE ${TP_WARNINGS})
  if(TP_SANITIZE)
    # The sanitizer's runtime owns malloc: the sites call tp_malloc.
    target_compile_definitions(${prog} PRIVATE PROFILE_TP_API=1)
    target_link_libraries(${prog} PRIVATE tierpool Threads::Threads ${CMAKE_DL_LIBS})
  else()
    target_link_libraries(${prog} PRIVATE tierpool-malloc Threads::Threads ${CMAKE_DL_LIBS})
    target_include_directories(${prog} PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include)
  endif()
endforeach()
# Its _Unwind_Backtrace must be the one the library finds.
target_compile_definitions(profile_prog_unwinder PRIVATE PROFILE_UNWINDER=1)
set_target_properties(profile_prog_unwinder PROPERTIES ENABLE_EXPORTS ON)

# The live set exactly: every allocation a sample (PROFILE_SAMPLE=1).
tp_add_test(test_profile LIB tierpool LABELS profile api)

foreach(case outside pool fork threads unwinder at_exit)
  set(prog profile_prog)
  if(case STREQUAL "unwinder")
    set(prog profile_prog_unwinder)
  endif()
  tp_test(profile_${case} LABELS profile TIMEOUT 240 SKIP_RETURN_CODE 77
    COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/profile/profile_test.py ${case} --prog $<TARGET_FILE:${prog}>
    --tool $<TARGET_FILE:tierpool-cli> --work ${CMAKE_CURRENT_BINARY_DIR}/profile-${case})
endforeach()

# A static program's C library allocates before it can unwind: every
# allocation a sample (PROFILE_SAMPLE=1) must still leave those alone.
if(TARGET override_conformance_static)
  tp_test(profile_static_start LABELS profile TIMEOUT 120
    COMMAND $<TARGET_FILE:override_conformance_static>
    ENV TIERPOOL_PROFILE=1 TIERPOOL_PROFILE_SAMPLE=1)
endif()
