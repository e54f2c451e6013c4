cd /work/main
for r in 1 2; do
  RAYON_NUM_THREADS=1 MISTRALRS_BENCH_MODELS=llama-3-8b,smollm2-135m MISTRALRS_BENCH_OUT=target/q41/r$r CRITERION_HOME=target/q41/r$r/criterion \
    cargo bench --bench bench_main -- '^quant_matmul/(llama-3-8b/(q4/(Q4_0|Q4_1|Q4K)|q8/Q8_0)/down/m1|smollm2-135m/q4/Q4_1/(gate_up|down)/m1)$' > target/q41/mrs-$r.log 2>&1
  LD_LIBRARY_PATH=target/llamacpp/cpu/lib target/llamacpp/cpu/bin/test-backend-ops perf -o MUL_MAT -b CPU \
    -p 'type_a=(q4_0|q4_1|q4_K|q8_0),type_b=f32,m=4096,n=1,k=14336,bs=\[1,1\],nr=\[1,1\]' > target/q41/tbo-$r.txt 2>&1
done
echo done > target/q41/DONE
