# SPDX-License-Identifier: MIT
# Installs shiftnorm with its CUDA component into a scratch prefix, builds the CUDA consumer
# against it (find_package(shiftnorm COMPONENTS cuda)), runs it.
file(REMOVE_RECURSE ${WORK})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/lib -G ${GENERATOR} -DCMAKE_INSTALL_PREFIX=${WORK}/prefix
    -DSHIFTNORM_BUILD_TESTS=OFF -DSHIFTNORM_BUILD_EXAMPLES=OFF -DSHIFTNORM_BUILD_BENCHMARKS=OFF
    -DSHIFTNORM_ENABLE_CUDA=ON -DCMAKE_CUDA_COMPILER=${CUDA_COMPILER} -DSHIFTNORM_BUILD_PYTHON=OFF
    -DSHIFTNORM_INSTALL=ON)
run(${CMAKE_COMMAND} --install ${WORK}/lib)
run(${CMAKE_COMMAND} -S ${CONSUMER} -B ${WORK}/app -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${WORK}/prefix
    -DCMAKE_CUDA_COMPILER=${CUDA_COMPILER} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK}/app)
run(${WORK}/app/consumer_cuda)
