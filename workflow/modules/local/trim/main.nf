process CFRNA_TRIM {
    tag "${meta.id}"
    label 'process_low'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    tuple val(meta), path(reads)   // meta: [id, single_end, strandedness, ...]; reads: [R1] or [R1, R2]

    output:
    tuple val(meta), path("*.trimmed.fastq.gz"), emit: reads
    tuple val(meta), path("*.trim.json")       , emit: json
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def prefix = task.ext.prefix ?: "${meta.id}"
    def r2 = meta.single_end ? '' : "--fastq-2 ${reads[1]}"
    // UMIs (meta.umi_*: the sample's columns over --umi_*): extracted into the read names before trimming
    def umi = meta.umi_in_name ? '--umi-in-name' : ''
    if (meta.umi_pattern) { umi = "--umi-pattern ${meta.umi_pattern}" + (meta.umi_read ? " --umi-read ${meta.umi_read}" : '') }
    if (umi) { umi += " --umi-separator '${meta.umi_separator ?: '_'}'" }
    """
    cfrna trim \\
        --sample ${prefix} \\
        --fastq-1 ${reads[0]} \\
        ${r2} \\
        --outdir . \\
        --threads ${task.cpus} \\
        ${umi} \\
        ${args}
    """

    stub:
    def prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo | gzip > ${prefix}_1.trimmed.fastq.gz
    ${meta.single_end ? '' : "echo | gzip > ${prefix}_2.trimmed.fastq.gz"}
    echo '{}' > ${prefix}.trim.json
    """
}
