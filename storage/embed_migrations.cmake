# placeholder
file(WRITE ${OUT} "// generated\n")
