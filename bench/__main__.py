from bench import cold_start, list_reads

list_reads.main()
print()
cold_start.main()
