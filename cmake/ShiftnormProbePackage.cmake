# SPDX-License-Identifier: MIT
# shiftnorm_probe_package(<Name> <result-var>): does find_package(<Name> CONFIG) succeed?
#
# Optional peers (oneDNN for the benchmarks) are found by their own package configs, which may
# fail hard: Debian's dnnl-config.cmake calls find_package(OpenCL REQUIRED) and stops the whole
# configure step when the OpenCL headers (only *recommended* by libdnnl-dev) are missing. So the
# package is first looked for in a separate CMake process; only when that succeeds is it safe to
# call find_package(<Name>) in this project. An optional peer can then never break configure.
function(shiftnorm_probe_package name result)
  set(_dir "${CMAKE_BINARY_DIR}/shiftnorm-probe-${name}")
  file(REMOVE_RECURSE "${_dir}")
  file(MAKE_DIRECTORY "${_dir}")
  file(WRITE "${_dir}/CMakeLists.txt"
    "cmake_minimum_required(VERSION 3.18)\nproject(probe LANGUAGES C CXX)\nfind_package(${name} CONFIG REQUIRED)\n")
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -S "${_dir}" -B "${_dir}/build"
            "-DCMAKE_PREFIX_PATH=${CMAKE_PREFIX_PATH}" "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}"
    RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  if(_rc EQUAL 0)
    set(${result} ON PARENT_SCOPE)
  else()
    string(REGEX MATCH "Could NOT find[^\n]*" _why "${_err}")
    if(NOT _why)
      string(REGEX MATCH "Could not find[^\n]*" _why "${_err}")
    endif()
    message(STATUS "shiftnorm: optional package ${name} not usable (${_why}); see ${_dir}/build/CMakeFiles")
    set(${result} OFF PARENT_SCOPE)
  endif()
endfunction()
