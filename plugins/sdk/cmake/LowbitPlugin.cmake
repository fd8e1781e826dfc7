# Building lowbit plugins, in the lowbit tree and outside it (find_package(lowbit)):
#
# lowbit_add_plugin(<name> SOURCES <files...> [LINK <targets...>])
#   A plugin: a shared library with the entry point of LOWBIT_PLUGIN, linked against the SDK,
#   written where `lowbit` looks for plugins (in the lowbit tree: <build>/lib/lowbit/plugins). Its
#   sources are compiled once, into the object library <name>_objects, which its test links too.
#   Only the entry point is exported (hidden visibility): two plugins' classes never collide.
#
# lowbit_add_plugin_test(<name> SOURCES <test files...> [LINK <targets...>])
#   A Catch2 (v2) test executable <name>_tests of the plugin's objects and the test files,
#   registered with CTest. The plugin's entry point is in it, so a test reaches the plugin's
#   components as the harness does after loading (lowbit/sdk/testing/plugin_test.h).
#   LOWBIT_TEST_THREADS=<n> in the environment sets LibTorch's intra-op threads. Each test file is
#   one CTest test (lowbit_register_catch_tests, below).

# Captured here: inside a function CMAKE_CURRENT_LIST_DIR is the caller's. Cached, so folders
# beside the one that included this file see it too.
set(LOWBIT_SDK_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR} CACHE INTERNAL "lowbit's CMake helpers")

function(lowbit_sdk_target out)
  if(TARGET lowbit::sdk)
    set(${out} lowbit::sdk PARENT_SCOPE)
  else()
    set(${out} lowbit_sdk PARENT_SCOPE)
  endif()
endfunction()

function(lowbit_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINK" ${ARGN})
  lowbit_sdk_target(sdk)
  add_library(${name}_objects OBJECT ${ARG_SOURCES})
  target_link_libraries(${name}_objects PUBLIC ${sdk} ${ARG_LINK})
  set_target_properties(${name}_objects PROPERTIES POSITION_INDEPENDENT_CODE ON
                                                   CXX_VISIBILITY_PRESET hidden
                                                   VISIBILITY_INLINES_HIDDEN ON)
  if(TARGET lowbit_warnings)
    target_link_libraries(${name}_objects PRIVATE lowbit_warnings)
  else()
    target_compile_options(${name}_objects PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra>")
  endif()
  if(COMMAND lowbit_use_precompiled_torch)
    lowbit_use_precompiled_torch(${name}_objects)
  endif()

  add_library(${name} MODULE)
  target_link_libraries(${name} PRIVATE ${name}_objects)
  set_target_properties(${name} PROPERTIES PREFIX "lib" OUTPUT_NAME "lowbit_${name}")
  if(LOWBIT_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${LOWBIT_PLUGIN_OUTPUT_DIRECTORY})
  endif()
endfunction()

function(lowbit_add_plugin_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINK" ${ARGN})
  if(NOT TARGET lowbit_catch_main)
    find_package(Catch2 2 REQUIRED)
    add_library(lowbit_catch_main STATIC ${LOWBIT_SDK_CMAKE_DIR}/lowbit_catch_main.cpp)
    target_link_libraries(lowbit_catch_main PUBLIC Catch2::Catch2 ${TORCH_LIBRARIES})
    if(COMMAND lowbit_use_precompiled_torch)
      lowbit_use_precompiled_torch(lowbit_catch_main)
    else()
      target_compile_options(lowbit_catch_main PRIVATE -O0)  # Catch2's runner: nothing to optimize
    endif()
  endif()
  include(Catch)
  add_executable(${name}_tests ${ARG_SOURCES})
  target_link_libraries(${name}_tests PRIVATE ${name}_objects lowbit_catch_main ${ARG_LINK})
  if(TARGET lowbit_warnings)
    target_link_libraries(${name}_tests PRIVATE lowbit_warnings)
  endif()
  if(COMMAND lowbit_compile_as_test)
    lowbit_compile_as_test(${name}_tests)
  else()
    # Test code is set-up and assertions around the optimized plugin: it builds in about half the
    # time unoptimized.
    target_compile_options(${name}_tests PRIVATE -O0)
  endif()
  lowbit_register_catch_tests(${name}_tests)
endfunction()

# lowbit_register_catch_tests(<target>)
#   Registers a Catch2 test executable with CTest: one CTest test per source file, which runs that
#   file's test cases in one process ("-# [#<file>]": Catch2's file-name tags), since LibTorch's
#   start-up costs about a second of CPU in every process (a quarter of the suite's CPU time when
#   each test case was a process). A file that can skip a test case (LOWBIT_SKIP,
#   lowbit/sdk/testing/skip.h) keeps one CTest test per test case instead, so that a skip shows as
#   Skipped in CTest's summary without covering its neighbours' results.
function(lowbit_register_catch_tests target)
  include(Catch)
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  foreach(source IN LISTS sources)
    if(NOT IS_ABSOLUTE ${source})
      set(source ${source_dir}/${source})
    endif()
    get_filename_component(topic ${source} NAME_WE)
    # Re-read when the file changes: a LOWBIT_SKIP added later changes how it is registered.
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${source})
    file(READ ${source} text)
    if(NOT text MATCHES "TEST_CASE")
      continue()  # a source under test compiled into the test program
    endif()
    if(text MATCHES "LOWBIT_SKIP")
      # CMake splits a discovered name at ';', and Catch2 v2 passes a spec that matches nothing:
      # such a test case would pass without running.
      if(text MATCHES "TEST_CASE\\(\"[^\"]*;")
        message(FATAL_ERROR "${source}: a test case name with ';' cannot run as its own CTest "
                            "test (this file can skip a test case): rename it")
      endif()
      catch_discover_tests(${target} TEST_SPEC "-#" "[#${topic}]"
                           PROPERTIES SKIP_REGULAR_EXPRESSION "LOWBIT-SKIPPED:")
    else()
      add_test(NAME ${target}.${topic} COMMAND ${target} "-#" "[#${topic}]")
    endif()
  endforeach()
endfunction()

# In the lowbit tree, make `lowbit` depend on every plugin it ships, and install it where the
# installed `lowbit` looks (<prefix>/<libdir>/lowbit/plugins, beside bin/).
macro(lowbit_ship_plugin name)
  add_dependencies(lowbit_plugins ${name})
  install(TARGETS ${name} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/lowbit/plugins)
endmacro()
