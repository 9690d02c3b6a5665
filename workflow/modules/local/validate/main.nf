process CFRNA_VALIDATE {
    tag "${samplesheet.name}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    path samplesheet                // file: samplesheet CSV (relative FASTQ paths resolve against its real folder)
    path contrasts                  // file: contrasts CSV, or [] for none
    tuple val(meta), path(gtf)      // reference annotation
    tuple val(meta2), path(fasta)   // reference genome FASTA

    output:
    path "samplesheet.valid.csv", emit: samplesheet
    path "validate.log"         , emit: log
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def contrasts_opt = contrasts ? "--contrasts ${contrasts}" : ''
    """
    set -o pipefail
    cfrna validate \\
        --samplesheet "\$(readlink -f ${samplesheet})" \\
        ${contrasts_opt} \\
        --gtf ${gtf} \\
        --fasta ${fasta} \\
        --normalized samplesheet.valid.csv \\
        ${args} | tee validate.log
    """

    stub:
    // as `cfrna validate --normalized`: FASTQ paths made absolute against the sheet's real folder
    """
    dir=\$(dirname "\$(readlink -f ${samplesheet})")
    awk -F, -v OFS=, -v d="\$dir" '
        NR == 1 { for (i = 1; i <= NF; i++) if (\$i ~ /^fastq_[12]\$/) f[i] = 1; print; next }
        { for (i in f) if (\$i != "" && substr(\$i, 1, 1) != "/") \$i = d "/" \$i; print }
    ' ${samplesheet} > samplesheet.valid.csv
    touch validate.log
    """
}
