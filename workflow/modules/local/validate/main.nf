process CFRNA_VALIDATE {
    tag "${samplesheet.name}"
    label 'process_single'
    conda "${moduleDir}/environment.yml"

    input:
    path samplesheet   // file: samplesheet CSV (relative FASTQ paths resolve against its real folder)
    path contrasts     // file: contrasts CSV, or [] for none
    path gtf           // file: GTF
    path fasta         // file: genome FASTA

    output:
    path "samplesheet.valid.csv", emit: samplesheet
    path "validate.log"         , emit: log
    path "versions.yml"         , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def contrasts_opt = contrasts ? "--contrasts ${contrasts}" : ''
    """
    cfrna-validate \\
        --samplesheet "\$(readlink -f ${samplesheet})" \\
        ${contrasts_opt} \\
        --gtf ${gtf} \\
        --fasta ${fasta} \\
        --normalized samplesheet.valid.csv \\
        ${args} | tee validate.log

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(cfrna-validate --version 2>&1 | sed 's/^cfrna //')
    END_VERSIONS
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
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
