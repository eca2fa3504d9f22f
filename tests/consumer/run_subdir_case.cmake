# SPDX-License-Identifier: MIT
# Builds the add_subdirectory consumer against the source tree and runs it.
file(REMOVE_RECURSE ${WORK})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S ${CONSUMER} -B ${WORK}/app -G ${GENERATOR} -DSHIFTNORM_SOURCE=${SOURCE})
run(${CMAKE_COMMAND} --build ${WORK}/app)
run(${WORK}/app/consumer)
run(${WORK}/app/consumer_eval)
