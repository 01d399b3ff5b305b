# Fuzz targets (docs/fuzzing.md). A target is one file defining
# LLVMFuzzerTestOneInput; its seed corpus is tests/data/fuzz/NAME.
#
#   cce_fuzz(NAME SRCS x_fuzz.cc DEPS lib... [INSTRUMENT lib...])
#
# With -DCCE_FUZZ=ON (clang, build-fuzz): a libFuzzer binary <build>/fuzz/NAME;
# the INSTRUMENT libraries get coverage instrumentation (the parser's own
# code, so libFuzzer sees its branches). `make fuzz` and scripts/fuzz-smoke.sh
# run these.
# Otherwise (the ordinary gcc build): NAME links the target with a small
# replay main (tests/fuzz/replay_main.cc) and the test NAME_corpus replays the
# seed corpus through it, so every target compiles and runs in `ctest`.
function(cce_fuzz name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;INSTRUMENT" ${ARGN})
  if(CCE_FUZZ)
    if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
      message(FATAL_ERROR "CCE_FUZZ needs clang (configure with CXX=clang++)")
    endif()
    foreach(lib ${ARG_INSTRUMENT})
      target_compile_options(${lib} PRIVATE -fsanitize=fuzzer-no-link)
    endforeach()
    cce_binary(${name} SRCS ${ARG_SRCS} DEPS ${ARG_DEPS})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  else()
    cce_binary(${name} SRCS ${ARG_SRCS} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.cc
               DEPS ${ARG_DEPS})
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
    add_test(NAME ${name}_corpus
             COMMAND ${name} ${PROJECT_SOURCE_DIR}/tests/data/fuzz/${name})
    set_tests_properties(${name}_corpus PROPERTIES TIMEOUT 120 LABELS fuzz)
  endif()
endfunction()
