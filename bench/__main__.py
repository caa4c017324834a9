from bench import list_reads

list_reads.main()
