# One place for warnings, hardening and sanitizer flags, and one helper per
# target kind. Components call cce_library / cce_test / cce_binary only.

set(CCE_SANITIZER "" CACHE STRING "Sanitizer build: '', address, thread, undefined")

set(CCE_WARNINGS -Wall -Wextra -Wpedantic -Werror -Wshadow -Wconversion
    -Wno-sign-conversion -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
    -Wformat=2 -Wimplicit-fallthrough)
set(CCE_HARDENING -fstack-protector-strong -fstack-clash-protection -fcf-protection -fPIE)
set(CCE_LINK_HARDENING -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack)

if(CCE_SANITIZER STREQUAL "address")
  set(CCE_SAN_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
elseif(CCE_SANITIZER STREQUAL "thread")
  set(CCE_SAN_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
elseif(CCE_SANITIZER STREQUAL "undefined")
  set(CCE_SAN_FLAGS -fsanitize=undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
else()
  set(CCE_SAN_FLAGS "")
  # _FORTIFY_SOURCE needs optimisation and conflicts with sanitizer interceptors.
  list(APPEND CCE_HARDENING -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3)
endif()

# Precompiled headers (docs/build.md): with gcc, every test shares one PCH of
# gtest, nlohmann/json and common std headers (target cce_pch_test), so those
# are parsed once per build instead of once per test file: about 0.8 s of CPU
# saved per test file. Libraries and binaries have none: loading a 120 MB PCH
# costs a file that does not use nlohmann/json about what it saves one that
# does. External headers only: the PCH holds nothing of ours. A test whose
# flags do not match still builds (gcc warns and parses the headers). Off for
# clang (the fuzz build), with a ccache launcher (ccache does not cache a file
# built with a PCH unless told to be sloppy, and it already makes rebuilds
# cheap) and with -DCCE_PCH=OFF: it is for cold builds like CI's.
#
# OFF by default: in a fresh-clone `make test` gcc 12 raised a false
# -Warray-bounds (an error under -Werror) in src/attest/test_util.h that it
# does not raise without the PCH. Turn it on with -DCCE_PCH=ON only after a
# whole-tree build with it is clean.
option(CCE_PCH "Precompiled header for the tests (gcc builds)" OFF)
if(CCE_PCH AND NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  set(CCE_PCH OFF)
endif()
set(CCE_PCH_TEST_HEADERS <gtest/gtest.h> <nlohmann/json.hpp> <algorithm> <array>
    <chrono> <cstddef> <cstdint> <cstring> <filesystem> <fstream> <functional> <map>
    <memory> <optional> <set> <span> <sstream> <string> <string_view> <thread>
    <unordered_map> <utility> <vector>)

function(_cce_test_pch target)
  if(NOT CCE_PCH)
    return()
  endif()
  # The donor: an empty file compiled with the tests' flags (made on first use).
  if(NOT TARGET cce_pch_test)
    set(src ${CMAKE_BINARY_DIR}/cce_pch_test.cc)
    if(NOT EXISTS ${src})
      file(WRITE ${src} "// Builds the tests' precompiled header (cmake/CceHelpers.cmake).\n")
    endif()
    add_library(cce_pch_test OBJECT ${src})
    _cce_flags(cce_pch_test)
    _cce_test_flags(cce_pch_test)
    target_link_libraries(cce_pch_test PRIVATE GTest::gtest nlohmann_json::nlohmann_json)
    target_precompile_headers(cce_pch_test PRIVATE ${CCE_PCH_TEST_HEADERS})
  endif()
  target_precompile_headers(${target} REUSE_FROM cce_pch_test)
  # A PCH that does not fit a test's flags is a slower build, not a broken one.
  target_compile_options(${target} PRIVATE -Wno-error=invalid-pch)
endfunction()

# What cce_test adds to the common flags (shared with the test PCH donor).
function(_cce_test_flags target)
  target_compile_definitions(${target} PRIVATE
      CCE_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CCE_BIN_DIR="${CMAKE_BINARY_DIR}/bin")
  # Test code itself needs no -O2 or full debug info: -O1 -g1 halves its
  # compile time (the libraries under test keep the build type's flags).
  if(CMAKE_BUILD_TYPE STREQUAL "RelWithDebInfo" AND NOT CCE_SANITIZER)
    target_compile_options(${target} PRIVATE -O1 -g1)
  endif()
endfunction()

# Debug info of a RelWithDebInfo build: "full" (-g, CMake's default) or
# "lines" (-g1: line tables and function names -- backtraces, perf and
# addr2line keep file:line; a debugger shows no local variables). The
# Makefile's build (what `make test` and CI use) asks for "lines": a quarter
# less compile time for libraries and binaries (docs/build.md).
set(CCE_DEBUG_INFO "full" CACHE STRING "RelWithDebInfo debug info: full (-g) or lines (-g1)")
set_property(CACHE CCE_DEBUG_INFO PROPERTY STRINGS full lines)
if(CCE_DEBUG_INFO STREQUAL "lines")
  add_compile_options($<$<CONFIG:RelWithDebInfo>:-g1>)
elseif(NOT CCE_DEBUG_INFO STREQUAL "full")
  message(FATAL_ERROR "CCE_DEBUG_INFO is '${CCE_DEBUG_INFO}': use full or lines")
endif()

# Link with lld when it is installed (`lld` is in the Makefile's DEB_PACKAGES):
# about a third of GNU ld's CPU time for the same binaries (docs/build.md).
# -DCCE_LLD=OFF keeps the toolchain's default linker.
option(CCE_LLD "Link with lld if it is installed" ON)
set(CCE_LINKER_FLAGS "")
if(CCE_LLD)
  include(CheckLinkerFlag)
  check_linker_flag(CXX -fuse-ld=lld CCE_HAVE_LLD)
  if(CCE_HAVE_LLD)
    set(CCE_LINKER_FLAGS -fuse-ld=lld)
  endif()
endif()

function(_cce_flags target)
  target_compile_options(${target} PRIVATE ${CCE_WARNINGS} ${CCE_HARDENING} ${CCE_SAN_FLAGS})
  target_link_options(${target} PRIVATE ${CCE_LINK_HARDENING} ${CCE_SAN_FLAGS} ${CCE_LINKER_FLAGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/src)
endfunction()

# cce_library(NAME SRCS a.cc b.cc DEPS x y)
function(cce_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  _cce_flags(${name})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# cce_test(NAME SRCS a_test.cc DEPS x [LABELS l])
function(cce_test name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  _cce_flags(${name})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  _cce_test_flags(${name})
  _cce_test_pch(${name})
  add_test(NAME ${name} COMMAND ${name})
  if(ARG_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}")
  endif()
endfunction()

# cce_binary(NAME SRCS main.cc DEPS x)
function(cce_binary name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  _cce_flags(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()
