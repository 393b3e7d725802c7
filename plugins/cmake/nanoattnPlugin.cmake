# nanoattn_add_attention_plugin(<name> SOURCES <files>...)
#
# Builds an attention plugin: a shared module `<name>.so` linked against libnanoattn, with
# hidden symbols except the entry point. In nanoattn's own tree it lands in the build's plugin
# folder (lib/nanoattn/plugins) and is installed with nanoattn (the conformance suite in
# tests/conformance checks it). Out of tree (after find_package(nanoattn)) it lands in the
# current build folder, and `nanoattn check-plugin <name>.so` is registered as the ctest test
# `check_plugin_<name>` (tests exist once the project calls enable_testing()). To use it, list
# that folder in an experiment's `plugin_paths:` (resolved against the YAML file's folder) or
# in NANOATTN_PLUGIN_PATH.
function(nanoattn_add_attention_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "nanoattn_add_attention_plugin(${name}): give its SOURCES")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE nanoattn::nanoattn)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED NANOATTN_PLUGIN_DIR AND TARGET nanoattn)  # inside nanoattn's own build
    set_target_properties(${name} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/${NANOATTN_PLUGIN_DIR}
      INSTALL_RPATH "$ORIGIN/../..")
    install(TARGETS ${name} LIBRARY DESTINATION ${NANOATTN_PLUGIN_DIR})
    set_property(GLOBAL APPEND PROPERTY NANOATTN_PLUGIN_TARGETS ${name})
  elseif(DEFINED NANOATTN_EXECUTABLE)
    add_test(NAME check_plugin_${name} COMMAND ${NANOATTN_EXECUTABLE} check-plugin $<TARGET_FILE:${name}>)
  endif()
endfunction()
