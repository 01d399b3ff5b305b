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

function(_cce_flags target)
  target_compile_options(${target} PRIVATE ${CCE_WARNINGS} ${CCE_HARDENING} ${CCE_SAN_FLAGS})
  target_link_options(${target} PRIVATE ${CCE_LINK_HARDENING} ${CCE_SAN_FLAGS})
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
  target_compile_definitions(${name} PRIVATE
      CCE_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CCE_BIN_DIR="${CMAKE_BINARY_DIR}/bin")
  # Test code itself needs no -O2 or full debug info: -O1 -g1 halves its
  # compile time (the libraries under test keep the build type's flags).
  if(CMAKE_BUILD_TYPE STREQUAL "RelWithDebInfo" AND NOT CCE_SANITIZER)
    target_compile_options(${name} PRIVATE -O1 -g1)
  endif()
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
