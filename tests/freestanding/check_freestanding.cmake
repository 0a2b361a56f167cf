# SPDX-License-Identifier: MIT
#
# cmake -DCC=<c compiler> -DNM=<nm> -DSRC_DIR=<libmaptbl/src> -DINC_DIR=<libmaptbl/include>
#       -DGEN_INC_DIR=<build/libmaptbl/include> -DWORK_DIR=<scratch dir> -P check_freestanding.cmake
#
# Fails (FATAL_ERROR) when the freestanding sources or the public headers do not compile as the
# house style requires, or when a freestanding object needs a symbol from outside.

cmake_minimum_required(VERSION 3.25)

foreach(v CC NM SRC_DIR INC_DIR GEN_INC_DIR WORK_DIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_freestanding.cmake: -D${v}= is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

set(ERRORS 0)
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(SEND_ERROR "FAIL: ${what}\n  command: ${ARGN}\n${out}${err}")
    set(ERRORS 1 PARENT_SCOPE)
  else()
    message(STATUS "ok: ${what}")
  endif()
endfunction()

set(INCS -I${INC_DIR} -I${GEN_INC_DIR})
set(FREE -std=c11 -ffreestanding -nostdlib -c -Wall -Wextra -Werror -Wshadow
         -Wstrict-prototypes -Wmissing-prototypes ${INCS})

# Symbols a freestanding object may need. GCC and clang require memcpy, memmove, memset and memcmp
# even with -ffreestanding (the compiler may emit calls to them); walk.o calls crc32c.o.
set(ALLOWED maptbl_crc32c memcpy memmove memset memcmp)

foreach(opt -O0 -O2)
  foreach(src walk crc32c)
    set(obj ${WORK_DIR}/${src}${opt}.o)
    run("${src}.c ${opt} -ffreestanding -nostdlib" ${CC} ${FREE} ${opt} ${SRC_DIR}/${src}.c -o ${obj})
    if(EXISTS ${obj})
      execute_process(COMMAND ${NM} -u ${obj} OUTPUT_VARIABLE undef RESULT_VARIABLE rc)
      if(NOT rc EQUAL 0)
        message(SEND_ERROR "FAIL: nm -u ${obj}")
        set(ERRORS 1)
      endif()
      string(REGEX MATCHALL "U [^\n]+" lines "${undef}")
      foreach(l IN LISTS lines)
        string(REGEX REPLACE "^U +" "" sym "${l}")
        if(NOT sym IN_LIST ALLOWED)
          message(SEND_ERROR "FAIL: ${src}.c ${opt} needs '${sym}', which a freestanding build does not have")
          set(ERRORS 1)
        endif()
      endforeach()
    endif()
  endforeach()
endforeach()

# format.h and walk.h in a freestanding, pedantic translation unit.
file(WRITE ${WORK_DIR}/tu_free.c
"#include <maptbl/format.h>\n#include <maptbl/walk.h>\n\
uint32_t tu_free(const struct maptbl_node_hdr *h);\n\
uint32_t tu_free(const struct maptbl_node_hdr *h)\n\
{\n\treturn maptbl_node_capacity(4096, h->kind) + maptbl_le32_to_cpu(h->crc);\n}\n")
run("format.h + walk.h -ffreestanding -pedantic" ${CC} -std=c11 -pedantic -pedantic-errors
    -ffreestanding -nostdlib -c -Wall -Wextra -Werror ${INCS} ${WORK_DIR}/tu_free.c
    -o ${WORK_DIR}/tu_free.o)

# Every public header on its own (self-contained), then all together, with -std=c11 -pedantic.
foreach(h format.h walk.h maptbl.h version.h)
  file(WRITE ${WORK_DIR}/tu_${h}.c "#include <maptbl/${h}>\n#include <maptbl/${h}>\nint tu_dummy;\n")
  run("maptbl/${h} -std=c11 -pedantic" ${CC} -std=c11 -pedantic -pedantic-errors -c -Wall -Wextra
      -Werror -Wshadow -Wstrict-prototypes ${INCS} ${WORK_DIR}/tu_${h}.c
      -o ${WORK_DIR}/tu_${h}.o)
endforeach()

if(ERRORS)
  message(FATAL_ERROR "freestanding checks failed")
endif()
