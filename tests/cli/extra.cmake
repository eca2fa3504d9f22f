# SPDX-License-Identifier: MIT
# The CLI's subcommands are headers under tools/shiftnorm_cli; their tests call cmd_<name>()
# directly. They link what the CLI links: the eval component.
target_include_directories(test_${dir} PRIVATE ${PROJECT_SOURCE_DIR}/tools/shiftnorm_cli)
target_link_libraries(test_${dir} PRIVATE shiftnorm::eval)
# The hostile-input table against the real binary (exit codes and messages; nothing may hang).
if(SHIFTNORM_BUILD_EXAMPLES)
  add_test(NAME cli_hostile_inputs
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/run_hostile.sh $<TARGET_FILE:shiftnorm_cli>
            ${CMAKE_CURRENT_SOURCE_DIR}/cli/hostile_inputs.txt ${CMAKE_CURRENT_BINARY_DIR}/hostile_tmp)
endif()
