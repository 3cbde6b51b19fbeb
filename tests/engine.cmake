# Engine-internal tests kept beside the module they test (see src/).
foreach(name test_adapt test_purge test_monitor test_stats)
  add_executable(${name} ${name}.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
  target_link_libraries(${name} PRIVATE tierpool_static Threads::Threads)
  add_test(NAME ${name} COMMAND ${name})
endforeach()
