process CFRNA_SIMULATE {
    tag "n=${n_samples}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    val n_samples          // integer: number of samples
    val reads_per_sample   // integer: reads (pairs) per sample
    val seed               // integer: random seed

    output:
    path "cohort"                 , emit: cohort
    path "cohort/samplesheet.csv" , emit: samplesheet
    path "cohort/contrasts.csv"   , emit: contrasts
    path "cohort/genome.fa"       , emit: fasta
    path "cohort/genes.gtf"       , emit: gtf
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    cfrna simulate \\
        --outdir cohort \\
        --samples ${n_samples} \\
        --reads-per-sample ${reads_per_sample} \\
        --seed ${seed} \\
        ${args}
    """

    stub:
    // the layout of `cfrna simulate`: a samplesheet with one row per sample and relative FASTQ
    // paths (empty FASTQ files), so that -stub-run -profile test runs every per-sample task
    def paired = (task.ext.args ?: '').contains('--paired')
    def r2 = paired ? 'r2=fastq/\${s}_R2.fastq.gz; echo | gzip > cohort/\$r2' : 'r2='
    """
    mkdir -p cohort/fastq
    echo "sample,patient_id,visit_month,arm,flare,fastq_1,fastq_2,strandedness" > cohort/samplesheet.csv
    for i in \$(seq 1 ${n_samples}); do
        s=\$(printf 's%02d' "\$i")
        echo | gzip > cohort/fastq/\${s}_R1.fastq.gz
        ${r2}
        arm=\$([ \$((i % 2)) -eq 0 ] && echo steroid_tapering || echo steroid_maintenance)
        echo "\$s,P\$i,0,\$arm,no_flare,fastq/\${s}_R1.fastq.gz,\$r2,auto" >> cohort/samplesheet.csv
    done
    echo "id,variable,reference,target,blocking,formula" > cohort/contrasts.csv
    touch cohort/genome.fa cohort/genes.gtf
    """
}
