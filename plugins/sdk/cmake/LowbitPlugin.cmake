# lowbit_add_plugin(<name> SOURCES <files...> [LINK <targets...>])
# Builds a lowbit plugin: a shared library with the entry point of LOWBIT_PLUGIN, linked against
# the SDK, written where `lowbit` looks for plugins (in tree: <build>/lib/lowbit/plugins).
function(lowbit_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINK" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  if(TARGET lowbit::sdk)
    target_link_libraries(${name} PRIVATE lowbit::sdk ${ARG_LINK})
  else()
    target_link_libraries(${name} PRIVATE lowbit_sdk ${ARG_LINK})
  endif()
  set_target_properties(${name} PROPERTIES PREFIX "lib" OUTPUT_NAME "lowbit_${name}")
  if(LOWBIT_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${LOWBIT_PLUGIN_OUTPUT_DIRECTORY})
  endif()
  target_compile_options(${name} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra>")
endfunction()

# In the lowbit tree, make `lowbit` depend on every plugin it ships, and install it where the
# installed `lowbit` looks (<prefix>/lib/lowbit/plugins, beside bin/).
macro(lowbit_ship_plugin name)
  add_dependencies(lowbit_plugins ${name})
  install(TARGETS ${name} LIBRARY DESTINATION lib/lowbit/plugins)
endmacro()
