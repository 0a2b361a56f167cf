# SPDX-License-Identifier: MIT
#
# cmake -DNM=<nm> -DLIB=<lib.so> -DMAP=<lib.map> [-DSTATIC=<lib.a>] [-DPREFIX=<name prefix>]
#       -P check_symbols.cmake
#
# The dynamic symbols a shared library (libmaptbl.so, libmaptbl-fs.so) defines (nm -D
# --defined-only, without the version-node entries) must be exactly the names the version
# script's global: sections list (STYLE.md §8). A MAPTBL_API function forgotten in the map would
# otherwise be hidden by "local: *" without a word, so: with STATIC, every global maptbl_*
# function of the static library's objects must be listed too; with PREFIX, every function whose
# name starts with PREFIX in the shared library's full symbol table (local ones included: that is
# where "local: *" puts them) must be listed.

cmake_minimum_required(VERSION 3.25)

foreach(v NM LIB MAP)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_symbols.cmake: -D${v}= is required")
  endif()
endforeach()

execute_process(COMMAND ${NM} -D --defined-only ${LIB} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm -D --defined-only ${LIB} failed: ${err}")
endif()
set(exported "")
string(REPLACE "\n" ";" lines "${out}")
foreach(l IN LISTS lines)
  # "<address> <type> <name>[@@VERSION]"; type A is the version node (MAPTBL_0.1).
  if(l MATCHES "^[0-9a-fA-F]* *([A-Za-z]) +([^@ ]+)")
    if(NOT CMAKE_MATCH_1 STREQUAL "A")
      list(APPEND exported ${CMAKE_MATCH_2})
    endif()
  endif()
endforeach()

file(READ ${MAP} map)
string(REGEX REPLACE "#[^\n]*" "" map "${map}")
set(listed "")
# Each version node: NAME { global: a; b; ... local: *; } [PARENT];
string(REGEX MATCHALL "global:[^}]*" sections "${map}")
foreach(s IN LISTS sections)
  string(REGEX REPLACE "local:.*" "" s "${s}")
  string(REGEX REPLACE "^global:" "" s "${s}")
  string(REGEX MATCHALL "[A-Za-z_][A-Za-z0-9_]*" names "${s}")
  list(APPEND listed ${names})
endforeach()

list(SORT exported)
list(REMOVE_DUPLICATES exported)
list(SORT listed)
list(REMOVE_DUPLICATES listed)
list(LENGTH exported n_exp)
list(LENGTH listed n_map)
if(n_map EQUAL 0)
  message(FATAL_ERROR "no global: names found in ${MAP}")
endif()

set(missing ${listed})
if(exported)
  list(REMOVE_ITEM missing ${exported})
endif()
set(extra ${exported})
list(REMOVE_ITEM extra ${listed})
get_filename_component(libname ${LIB} NAME)
if(missing OR extra)
  message(FATAL_ERROR "${libname} exports differ from ${MAP}\n"
          "  listed in the map but not exported: ${missing}\n"
          "  exported but not in the map: ${extra}")
endif()

if(DEFINED STATIC)
  execute_process(COMMAND ${NM} -g --defined-only ${STATIC} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm -g --defined-only ${STATIC} failed: ${err}")
  endif()
  string(REGEX MATCHALL "[0-9a-fA-F]+ T maptbl_[A-Za-z0-9_]*" defs "${out}")
  set(unlisted "")
  foreach(d IN LISTS defs)
    string(REGEX REPLACE ".* T " "" name "${d}")
    if(NOT name IN_LIST listed)
      list(APPEND unlisted ${name})
    endif()
  endforeach()
  if(unlisted)
    message(FATAL_ERROR "functions named maptbl_* defined in ${STATIC} but not in ${MAP}: ${unlisted}")
  endif()
endif()
if(DEFINED PREFIX)
  execute_process(COMMAND ${NM} --defined-only ${LIB} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm --defined-only ${LIB} failed: ${err}")
  endif()
  if(out STREQUAL "")
    message(FATAL_ERROR "${LIB} has no symbol table (stripped?): cannot check PREFIX ${PREFIX}")
  endif()
  string(REGEX MATCHALL "[0-9a-fA-F]+ [Tt] ${PREFIX}[A-Za-z0-9_]*" defs "${out}")
  set(unlisted "")
  foreach(d IN LISTS defs)
    string(REGEX REPLACE ".* [Tt] " "" name "${d}")
    if(NOT name IN_LIST listed)
      list(APPEND unlisted ${name})
    endif()
  endforeach()
  if(unlisted)
    message(FATAL_ERROR "functions named ${PREFIX}* defined in ${libname} but not in ${MAP}: ${unlisted}")
  endif()
endif()
message(STATUS "symbols: ${n_exp} exported functions of ${libname} match ${MAP}")
