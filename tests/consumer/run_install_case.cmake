# SPDX-License-Identifier: MIT
# Installs shiftnorm into a scratch prefix, builds the find_package consumer against it, runs it.
# With -DCUDA_COMPILER=<nvcc> the package is installed with its cuda component and the consumer
# is the CUDA one (find_package_cuda: runs consumer_cuda); without, CUDA stays off (consumer,
# consumer_eval).
file(REMOVE_RECURSE ${WORK})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()
if(CUDA_COMPILER)
  set(_cuda -DSHIFTNORM_ENABLE_CUDA=ON -DCMAKE_CUDA_COMPILER=${CUDA_COMPILER})
  set(_app_cuda -DCMAKE_CUDA_COMPILER=${CUDA_COMPILER} -DCMAKE_BUILD_TYPE=Release)
  set(_programs consumer_cuda)
else()
  set(_cuda -DSHIFTNORM_ENABLE_CUDA=OFF)
  set(_app_cuda)
  set(_programs consumer consumer_eval)
endif()
run(${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/lib -G ${GENERATOR} -DCMAKE_INSTALL_PREFIX=${WORK}/prefix
    -DSHIFTNORM_BUILD_TESTS=OFF -DSHIFTNORM_BUILD_EXAMPLES=OFF -DSHIFTNORM_BUILD_BENCHMARKS=OFF
    ${_cuda} -DSHIFTNORM_BUILD_PYTHON=OFF -DSHIFTNORM_INSTALL=ON)
run(${CMAKE_COMMAND} --install ${WORK}/lib)
run(${CMAKE_COMMAND} -S ${CONSUMER} -B ${WORK}/app -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${WORK}/prefix ${_app_cuda})
run(${CMAKE_COMMAND} --build ${WORK}/app)
foreach(_p IN LISTS _programs)
  run(${WORK}/app/${_p})
endforeach()
